-- The tables an export's visibility reads (devices, spaces, customers, partners, users) stay
-- small in many deployments: a few dozen rows, under autovacuum's default analyze threshold of
-- 50 changed rows, so autovacuum would never give them statistics. Without them the planner takes
-- an export's devices for one row and plans one serial sort of every reading (measured: a
-- 10M-row export ran 70 s instead of 33 s). With a threshold of 0 they are analyzed after any
-- change (autovacuum's scale factor, 10% of the table, still spaces out the analyses of large ones).
ALTER TABLE devices SET (autovacuum_analyze_threshold = 0);
--> statement-breakpoint
ALTER TABLE spaces SET (autovacuum_analyze_threshold = 0);
--> statement-breakpoint
ALTER TABLE customers SET (autovacuum_analyze_threshold = 0);
--> statement-breakpoint
ALTER TABLE partners SET (autovacuum_analyze_threshold = 0);
--> statement-breakpoint
ALTER TABLE users SET (autovacuum_analyze_threshold = 0);

-- The metric catalogue: reference data every deployment needs, so it ships as a migration.
INSERT INTO metrics (name, unit, description) VALUES
  ('active_power', 'W', 'Active electrical power'),
  ('energy', 'Wh', 'Electrical energy consumed in the interval'),
  ('temperature', 'C', 'Air temperature'),
  ('illuminance', 'lux', 'Light level'),
  ('occupancy', '', 'Whether the space is occupied (0 or 1)'),
  ('area_head_count', '', 'People counted in the area')
ON CONFLICT (name) DO NOTHING;

import http from 'node:http';
import { keepAliveAgent } from './http-client';

/**
 * GET requests at a fixed rate, evenly spaced, whether or not earlier ones have answered (an
 * open loop): what "500 requests per second" means to a service. autocannon's `overallRate`
 * is a quota per second instead: its connections send the second's share as fast as they can
 * and then wait for the next second, so its latencies are those of bursts at full speed.
 *
 * Each latency runs from the moment the request was due, not from when it was sent, so a
 * client that falls behind counts against the service rather than hiding its delays.
 */

export interface OpenLoopResult {
  targetRps: number;
  seconds: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errorsOrNon2xx: number;
}

export async function openLoop(options: {
  url: string;
  headers: Record<string, string>;
  rate: number;
  seconds: number;
}): Promise<OpenLoopResult> {
  const agent = keepAliveAgent();
  const url = new URL(options.url);
  const total = Math.round(options.rate * options.seconds);
  const intervalMs = 1000 / options.rate;
  const latencies: number[] = [];
  let errors = 0;
  const inFlight = new Set<Promise<void>>();

  const send = (dueAt: number) => {
    const done = new Promise<void>((resolve) => {
      const request = http.request(
        { host: url.hostname, port: url.port, path: url.pathname + url.search, headers: options.headers, agent },
        (response) => {
          response.resume();
          response.on('end', () => {
            if (response.statusCode! >= 200 && response.statusCode! < 300) latencies.push(performance.now() - dueAt);
            else errors++;
            resolve();
          });
        },
      );
      request.on('error', () => {
        errors++;
        resolve();
      });
      request.end();
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };

  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    // Every request due by now goes out, so a late timer never lowers the rate.
    while (sent < total && started + sent * intervalMs <= now) send(started + sent++ * intervalMs);
    const nextDue = started + sent * intervalMs;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, nextDue - performance.now())));
  }
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - started) / 1000;
  agent.destroy();

  const sorted = latencies.sort((a, b) => a - b);
  const at = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! * 100) / 100;
  return {
    targetRps: options.rate,
    seconds: options.seconds,
    requests: total,
    rps: Math.round((total / elapsedS) * 10) / 10,
    p50Ms: at(50),
    p90Ms: at(90),
    p99Ms: at(99),
    maxMs: at(100),
    errorsOrNon2xx: errors,
  };
}

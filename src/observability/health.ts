/**
 * Health as a registry of small named checks (after Spring Boot Actuator's health contributors).
 * Liveness touches nothing; readiness runs every check, each time-boxed, and is down while draining.
 */
import { withTimeout } from '../lib/timeout.ts';

export interface HealthCheck {
  name: string;
  /** A required check that fails makes the service not ready (503). */
  required: boolean;
  /** Resolves when healthy; throws (or times out) when not. */
  check: () => Promise<void>;
}

export interface CheckResult {
  status: 'ok' | 'error';
  duration_ms: number;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  draining: boolean;
  checks: Record<string, CheckResult>;
}

export type HealthListener = (name: string, up: boolean) => void;

export class HealthRegistry {
  private readonly checks: HealthCheck[] = [];
  private readonly listeners: HealthListener[] = [];
  private draining = false;

  constructor(private readonly timeoutMs = 1_000) {}

  register(check: HealthCheck): void {
    this.checks.push(check);
  }

  names(): string[] {
    return this.checks.map((c) => c.name);
  }

  /** Whether a failing check of this name makes the service not ready. */
  isRequired(name: string): boolean {
    return this.checks.some((c) => c.name === name && c.required);
  }

  /** Called with each check's outcome (the dependency-up gauges listen here). */
  onResult(listener: HealthListener): void {
    this.listeners.push(listener);
  }

  setDraining(): void {
    this.draining = true;
  }

  isDraining(): boolean {
    return this.draining;
  }

  async readiness(): Promise<ReadinessReport> {
    const results = await Promise.all(this.checks.map((c) => this.run(c)));
    const checks: Record<string, CheckResult> = {};
    let ready = !this.draining;
    this.checks.forEach((c, i) => {
      const r = results[i]!;
      checks[c.name] = r;
      if (c.required && r.status !== 'ok') ready = false;
      for (const l of this.listeners) {
        try {
          l(c.name, r.status === 'ok');
        } catch {
          // a listener (e.g. a gauge) must never turn the probe itself into a 500
        }
      }
    });
    return { ready, draining: this.draining, checks };
  }

  private async run(c: HealthCheck): Promise<CheckResult> {
    const start = performance.now();
    try {
      await withTimeout(c.check(), this.timeoutMs, () => new Error(`timed out after ${this.timeoutMs} ms`));
      return { status: 'ok', duration_ms: Math.round(performance.now() - start) };
    } catch (err) {
      return { status: 'error', duration_ms: Math.round(performance.now() - start), error: (err as Error).message || 'check failed' };
    }
  }
}

/**
 * The audit trail on the Fastify instance: `app.audit` (the recorder, for anything that is not a
 * request: the console's operator actions call `app.audit.record`) and `request.audit(event)`,
 * which fills in the request's side — the actor (its user, unless given), the client address,
 * the user agent and the request id. Nothing runs for a request that records nothing.
 *
 * `app.auditAdminRead` is an onSend hook for the admin-only routes: it records the read with its
 * outcome (success; denied for a signed-in user who is not an admin; failure otherwise).
 * Anonymous calls (401) are not recorded: they identify nobody and would let anyone fill the table.
 */
import fp from 'fastify-plugin';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ANONYMOUS_ACTOR, type AuditEvent, type AuditOutcome, type AuditTrail } from './trail.ts';

export type RequestAuditEvent = Omit<AuditEvent, 'actor' | 'ip' | 'userAgent' | 'requestId'> & { actor?: string };

declare module 'fastify' {
  interface FastifyInstance {
    audit: AuditTrail;
    auditAdminRead: (request: FastifyRequest, reply: FastifyReply, payload: unknown) => Promise<unknown>;
  }
  interface FastifyRequest {
    /** Records an event of this request; resolves false (never rejects) when it could not be stored. */
    audit(event: RequestAuditEvent): Promise<boolean>;
  }
}

export function outcomeOfStatus(status: number): AuditOutcome {
  return status < 400 ? 'success' : status === 403 ? 'denied' : 'failure';
}

export default fp(
  async (app, opts: { trail: AuditTrail }) => {
    app.decorate('audit', opts.trail);
    app.decorateRequest('audit', function (this: FastifyRequest, event: RequestAuditEvent) {
      return opts.trail.record({
        ...event,
        actor: event.actor ?? this.userId ?? ANONYMOUS_ACTOR,
        ip: this.ip,
        userAgent: this.headers['user-agent'],
        requestId: this.id,
      });
    });
    app.decorate('auditAdminRead', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      if (!request.userId || reply.statusCode === 401) return payload;
      await request.audit({
        action: 'monitoring.read',
        outcome: outcomeOfStatus(reply.statusCode),
        targetType: 'endpoint',
        targetId: request.routeOptions.url ?? null,
        details: { method: request.method, status: reply.statusCode },
      });
      return payload;
    });
  },
  { name: 'audit' },
);

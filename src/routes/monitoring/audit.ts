/**
 * GET /api/v1/monitoring/audit (platform admin): the audit trail, newest first, filtered by actor,
 * action, outcome, request id and a time range, cursor-paginated. A filter that does not parse is
 * a 400 problem with field errors (a cursor that is not one of ours, a 422 as on every list).
 * Reading the trail is itself on the trail (`monitoring.read`).
 */
import { z } from 'zod';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { decodeCursor, encodeCursor } from '../../lib/cursor.ts';
import { AppError } from '../../lib/errors.ts';
import { pageQuery } from '../../lib/schemas.ts';
import { AUDIT_OUTCOMES, type AuditRow } from '../../modules/audit/trail.ts';

const timestamp = z.iso.datetime({ offset: true });

export const auditQuery = pageQuery
  .extend({
    actor: z.string().min(1).max(200).optional().describe('a user id, `system` or `anonymous`'),
    action: z.string().min(1).max(100).optional().describe('e.g. auth.login, auth.refresh_token_reuse, monitoring.read'),
    outcome: z.enum(AUDIT_OUTCOMES).optional(),
    request_id: z.string().min(1).max(128).optional(),
    from: timestamp.optional().describe('ISO 8601 date-time: events at or after it'),
    to: timestamp.optional().describe('ISO 8601 date-time: events at or before it'),
  })
  .superRefine((q, ctx) => {
    if (q.from && q.to && Date.parse(q.from) > Date.parse(q.to)) {
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'must not be before from' });
    }
  });

const auditEvent = z.object({
  id: z.number().int(),
  occurred_at: z.string(),
  actor: z.string(),
  action: z.string(),
  target_type: z.string().nullable(),
  target_id: z.string().nullable(),
  outcome: z.enum(AUDIT_OUTCOMES),
  ip: z.string().nullable().describe('the client address masked to its network (IPv4 /24, IPv6 /48)'),
  user_agent: z.string().nullable().describe('the user agent family (chrome, firefox, curl, …)'),
  request_id: z.string().nullable(),
  trace_id: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).nullable(),
  prev_hash: z.string(),
  hash: z.string(),
});

const auditPage = z.object({ items: z.array(auditEvent), next_cursor: z.string().nullable() });

const cursorSchema = z.object({ i: z.string().regex(/^[1-9]\d{0,15}$/) });

const view = (r: AuditRow): z.infer<typeof auditEvent> => ({
  id: Number(r.id),
  occurred_at: r.occurredAt.toISOString(),
  actor: r.actor,
  action: r.action,
  target_type: r.targetType,
  target_id: r.targetId,
  outcome: r.outcome as z.infer<typeof auditEvent>['outcome'],
  ip: r.ip,
  user_agent: r.userAgent,
  request_id: r.requestId,
  trace_id: r.traceId,
  details: (r.details ?? null) as Record<string, unknown> | null,
  prev_hash: r.prevHash,
  hash: r.hash,
});

/** One page of the trail for a raw query (shared with the operator console's audit view). */
export async function readAuditPage(app: FastifyInstance, query: unknown): Promise<z.infer<typeof auditPage>> {
  const parsed = auditQuery.safeParse(query);
  if (!parsed.success) {
    throw new AppError(
      400,
      'The audit filters are not valid',
      parsed.error.issues.map((i) => ({ field: ['query', ...i.path.map(String)].join('.'), message: i.message })),
    );
  }
  const q = parsed.data;
  const page = await app.audit.list({
    actor: q.actor,
    action: q.action,
    outcome: q.outcome,
    requestId: q.request_id,
    from: q.from ? new Date(q.from) : undefined,
    to: q.to ? new Date(q.to) : undefined,
    beforeId: q.cursor ? Number(decodeCursor(q.cursor, cursorSchema).i) : undefined,
    limit: q.limit,
  });
  return { items: page.items.map(view), next_cursor: page.nextBeforeId === null ? null : encodeCursor({ i: String(page.nextBeforeId) }) };
}

const routes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/audit',
    {
      onRequest: app.requireAdmin,
      onSend: app.auditAdminRead,
      // Bad filters answer 400 (below) rather than the generic 422.
      attachValidation: true,
      schema: {
        tags: ['monitoring'],
        summary: 'Audit trail (platform admin): who did what and when, newest first; pass next_cursor as cursor for the next page.',
        security: [{ bearer: [] }],
        querystring: auditQuery,
        response: { 200: auditPage },
      },
    },
    async (request) => readAuditPage(app, request.query),
  );
};

export default routes;

/** /api/v1/notifications routes: the caller's notifications, newest first, and marking them read. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { idParams, pageQuery } from '../../lib/schemas.ts';
import { notificationSchema, notificationView } from './schemas.ts';
import { NotificationService } from './service.ts';

const listQuery = pageQuery.extend({
  unread_only: z.stringbool().default(false),
});

const routes: FastifyPluginAsyncZod = async (app) => {
  const service = new NotificationService(app.database.db);
  const common = { tags: ['notifications'], security: [{ bearer: [] }] };

  app.get(
    '/',
    {
      onRequest: app.requireUser,
      schema: {
        ...common,
        summary: 'List notifications, newest first (cursor pagination; unread_only=true for unread ones).',
        querystring: listQuery,
        response: { 200: z.object({ items: z.array(notificationSchema), next_cursor: z.string().nullable() }) },
      },
    },
    async (request) => {
      const page = await service.list(request.userId!, {
        limit: request.query.limit,
        cursor: request.query.cursor,
        unreadOnly: request.query.unread_only,
      });
      return { items: page.items.map(notificationView), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/read-all',
    {
      onRequest: app.requireUser,
      schema: {
        ...common,
        summary: 'Mark every unread notification as read.',
        response: { 200: z.object({ updated: z.number().int() }) },
      },
    },
    async (request) => ({ updated: await service.markAllRead(request.userId!) }),
  );

  app.post(
    '/:id/read',
    {
      onRequest: app.requireUser,
      schema: {
        ...common,
        summary: 'Mark one notification as read (idempotent: the first read_at is kept).',
        params: idParams,
        response: { 200: notificationSchema },
      },
    },
    async (request) => notificationView(await service.markRead(request.userId!, request.params.id)),
  );
};

export default routes;

/** /api/v1/accounts routes: the caller's accounts, CRUD. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { idParams } from '../../lib/schemas.ts';
import { accountSchema, accountView, createAccountBody, updateAccountBody } from './schemas.ts';
import { AccountService } from './service.ts';

const routes: FastifyPluginAsyncZod = async (app) => {
  const service = new AccountService(app.database.db);
  const common = { tags: ['accounts'], security: [{ bearer: [] }] };
  const auth = { onRequest: app.requireUser };

  app.post(
    '/',
    { ...auth, schema: { ...common, summary: 'Create a manual account.', body: createAccountBody, response: { 201: accountSchema } } },
    async (request, reply) => reply.code(201).send(accountView(await service.create(request.userId!, request.body))),
  );

  app.get(
    '/',
    { ...auth, schema: { ...common, summary: 'List the accounts, oldest first.', response: { 200: z.object({ items: z.array(accountSchema) }) } } },
    async (request) => ({ items: (await service.list(request.userId!)).map(accountView) }),
  );

  app.get(
    '/:id',
    { ...auth, schema: { ...common, summary: 'Get one account.', params: idParams, response: { 200: accountSchema } } },
    async (request) => accountView(await service.get(request.userId!, request.params.id)),
  );

  app.patch(
    '/:id',
    {
      ...auth,
      schema: { ...common, summary: 'Change some fields of an account.', params: idParams, body: updateAccountBody, response: { 200: accountSchema } },
    },
    async (request) => accountView(await service.update(request.userId!, request.params.id, request.body)),
  );

  app.delete(
    '/:id',
    { ...auth, schema: { ...common, summary: 'Delete an account and its transactions.', params: idParams, response: { 204: z.null() } } },
    async (request, reply) => {
      await service.remove(request.userId!, request.params.id);
      await request.audit({ action: 'account.delete', outcome: 'success', targetType: 'account', targetId: request.params.id });
      return reply.code(204).send(null);
    },
  );
};

export default routes;

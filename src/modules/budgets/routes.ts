/** /api/v1/budgets routes: CRUD, the current period's spending, and alert checks. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { idParams, pageQuery } from '../../lib/schemas.ts';
import { notificationSchema, notificationView } from '../notifications/schemas.ts';
import { budgetSchema, budgetView, createBudgetBody, spendingSchema, updateBudgetBody } from './schemas.ts';
import { BudgetService } from './service.ts';
import { spendingView } from './spending.ts';

const routes: FastifyPluginAsyncZod = async (app) => {
  const service = new BudgetService(app.database.db);
  // The process's one alert service (the composition root wires budget_alerts_total into it).
  const alerts = app.services.budgetAlerts;
  const common = { tags: ['budgets'], security: [{ bearer: [] }] };
  const auth = { onRequest: app.requireUser };

  app.post(
    '/',
    {
      ...auth,
      schema: { ...common, summary: 'Create a budget.', body: createBudgetBody, response: { 201: budgetSchema } },
    },
    async (request, reply) => reply.code(201).send(budgetView(await service.create(request.userId!, request.body))),
  );

  app.get(
    '/',
    {
      ...auth,
      schema: {
        ...common,
        summary: 'List budgets by name (cursor pagination).',
        querystring: pageQuery,
        response: { 200: z.object({ items: z.array(budgetSchema), next_cursor: z.string().nullable() }) },
      },
    },
    async (request) => {
      const page = await service.list(request.userId!, request.query);
      return { items: page.items.map(budgetView), next_cursor: page.nextCursor };
    },
  );

  app.post(
    '/check-alerts',
    {
      ...auth,
      schema: {
        ...common,
        summary: 'Check the active budgets now; returns the budget_alert notifications this check created.',
        response: { 200: z.object({ checked: z.number().int(), alerts: z.array(notificationSchema) }) },
      },
    },
    async (request) => {
      const result = await alerts.checkUser(request.userId!, new Date());
      return { checked: result.checked, alerts: result.alerts.map(notificationView) };
    },
  );

  app.get(
    '/:id',
    { ...auth, schema: { ...common, summary: 'Get a budget.', params: idParams, response: { 200: budgetSchema } } },
    async (request) => budgetView(await service.get(request.userId!, request.params.id)),
  );

  app.patch(
    '/:id',
    {
      ...auth,
      schema: { ...common, summary: 'Change a budget.', params: idParams, body: updateBudgetBody, response: { 200: budgetSchema } },
    },
    async (request) => budgetView(await service.update(request.userId!, request.params.id, request.body)),
  );

  app.delete(
    '/:id',
    { ...auth, schema: { ...common, summary: 'Delete a budget (and its alerts).', params: idParams, response: { 204: z.null() } } },
    async (request, reply) => {
      await service.remove(request.userId!, request.params.id);
      await request.audit({ action: 'budget.delete', outcome: 'success', targetType: 'budget', targetId: request.params.id });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/:id/spending',
    {
      ...auth,
      schema: {
        ...common,
        summary: "The current period's spending: money out (pending included) in the budget's category, or all categories.",
        params: idParams,
        response: { 200: spendingSchema },
      },
    },
    async (request) => {
      const { budget, spending } = await service.spending(request.userId!, request.params.id, new Date());
      return spendingView(budget, spending);
    },
  );
};

export default routes;

/** The database schema (drizzle). Money is numeric(14,2): exact, returned to JS as a decimal string. */
import { sql } from 'drizzle-orm';
import {
  bigint, boolean, date, index, jsonb, numeric, pgEnum, pgTable, smallint, text, timestamp, uniqueIndex, uuid,
} from 'drizzle-orm/pg-core';

const id = () => uuid('id').primaryKey().defaultRandom();
const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true }).notNull().defaultNow();
const money = (name: string) => numeric(name, { precision: 14, scale: 2 });

export const accountType = pgEnum('account_type', ['checking', 'savings', 'credit_card', 'loan', 'investment', 'other']);
export const accountSource = pgEnum('account_source', ['manual', 'plaid']);
export const budgetPeriod = pgEnum('budget_period', ['monthly', 'quarterly', 'yearly']);
export const notificationPriority = pgEnum('notification_priority', ['low', 'medium', 'high']);

export const users = pgTable(
  'users',
  {
    id: id(),
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    fullName: text('full_name'),
    isAdmin: boolean('is_admin').notNull().default(false),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('users_email_lower_key').on(sql`lower(${t.email})`), index('users_created_at_idx').on(t.createdAt)],
);

export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    familyId: uuid('family_id').notNull(),
    tokenHash: text('token_hash').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    replacedBy: uuid('replaced_by'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('refresh_tokens_hash_key').on(t.tokenHash),
    index('refresh_tokens_family_idx').on(t.familyId),
    index('refresh_tokens_expires_idx').on(t.expiresAt),
  ],
);

export const plaidItems = pgTable(
  'plaid_items',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    itemId: text('item_id').notNull(),
    provider: text('provider').notNull().default('plaid'),
    accessTokenEncrypted: text('access_token_encrypted').notNull(),
    institutionName: text('institution_name'),
    cursor: text('cursor'),
    status: text('status').notNull().default('active'),
    lastError: text('last_error'),
    lastSyncedAt: timestamp('last_synced_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('plaid_items_item_id_key').on(t.itemId), index('plaid_items_user_idx').on(t.userId)],
);

export const accounts = pgTable(
  'accounts',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    type: accountType('type').notNull(),
    institution: text('institution'),
    mask: text('mask'),
    currentBalance: money('current_balance').notNull().default('0'),
    currency: text('currency').notNull().default('USD'),
    source: accountSource('source').notNull().default('manual'),
    plaidItemId: uuid('plaid_item_id').references(() => plaidItems.id, { onDelete: 'set null' }),
    externalId: text('external_id'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('accounts_user_idx').on(t.userId), uniqueIndex('accounts_external_key').on(t.plaidItemId, t.externalId)],
);

export const categories = pgTable(
  'categories',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    isDefault: boolean('is_default').notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('categories_user_name_key').on(t.userId, sql`lower(${t.name})`)],
);

export const transactions = pgTable(
  'transactions',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    accountId: uuid('account_id').notNull().references(() => accounts.id, { onDelete: 'cascade' }),
    date: date('date', { mode: 'string' }).notNull(),
    amount: money('amount').notNull(),
    merchantName: text('merchant_name'),
    description: text('description'),
    categoryId: uuid('category_id').references(() => categories.id, { onDelete: 'set null' }),
    pending: boolean('pending').notNull().default(false),
    externalId: text('external_id'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    // Newest-first listing and cursor pagination for one user.
    index('transactions_user_date_idx').on(t.userId, t.date.desc(), t.id.desc()),
    index('transactions_account_date_idx').on(t.accountId, t.date.desc()),
    index('transactions_user_category_date_idx').on(t.userId, t.categoryId, t.date),
    uniqueIndex('transactions_account_external_key').on(t.accountId, t.externalId),
    index('transactions_created_at_idx').on(t.createdAt),
  ],
);

export const budgets = pgTable(
  'budgets',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    amount: money('amount').notNull(),
    period: budgetPeriod('period').notNull().default('monthly'),
    categoryId: uuid('category_id').references(() => categories.id, { onDelete: 'set null' }),
    alertThreshold: numeric('alert_threshold', { precision: 4, scale: 2 }).notNull().default('0.80'),
    isActive: boolean('is_active').notNull().default(true),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('budgets_user_idx').on(t.userId), index('budgets_active_idx').on(t.isActive)],
);

export const notifications = pgTable(
  'notifications',
  {
    id: id(),
    userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    priority: notificationPriority('priority').notNull(),
    title: text('title').notNull(),
    message: text('message').notNull(),
    budgetId: uuid('budget_id').references(() => budgets.id, { onDelete: 'cascade' }),
    periodStart: date('period_start', { mode: 'string' }),
    data: jsonb('data'),
    readAt: timestamp('read_at', { withTimezone: true }),
    createdAt: createdAt(),
  },
  (t) => [
    index('notifications_user_created_idx').on(t.userId, t.createdAt.desc()),
    // At most one alert per budget, period and priority, even under concurrent checks.
    uniqueIndex('notifications_budget_alert_key').on(t.budgetId, t.periodStart, t.priority),
  ],
);


/**
 * The audit trail (append-only): who did what, when, from where, and how it ended. Each row's
 * `hash` is sha256 over its previous row's hash, its id and a canonical serialization of its
 * columns (src/modules/audit/chain.ts), so an edited, removed or reordered row breaks the chain
 * that `nest-egg audit verify` walks. Ids come from `audit_chain_head`, not a sequence: they are
 * gap-free and in chain order.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    id: bigint('id', { mode: 'number' }).primaryKey(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull(),
    /** A user id, `system` (jobs, the CLI) or `anonymous` (nobody signed in). */
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    targetType: text('target_type'),
    targetId: text('target_id'),
    /** success | failure | denied */
    outcome: text('outcome').notNull(),
    /** The client address masked to its network (IPv4 /24, IPv6 /48). */
    ip: text('ip'),
    userAgent: text('user_agent'),
    requestId: text('request_id'),
    /** Filled in once tracing lands. */
    traceId: text('trace_id'),
    details: jsonb('details'),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [
    index('audit_events_occurred_at_idx').on(t.occurredAt),
    index('audit_events_actor_idx').on(t.actor, t.id.desc()),
    index('audit_events_action_idx').on(t.action, t.id.desc()),
  ],
);

/**
 * The head of the audit chain: one row (id 1) holding the last id and hash. Every append updates
 * it in the same statement that inserts the event, so its row lock serializes appends across all
 * replicas, and it says where the chain ends (a deleted newest row is noticed too).
 */
export const auditChainHead = pgTable('audit_chain_head', {
  id: smallint('id').primaryKey(),
  lastId: bigint('last_id', { mode: 'number' }).notNull(),
  prevHash: text('prev_hash').notNull(),
  lastHash: text('last_hash').notNull(),
});

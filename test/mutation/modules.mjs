/**
 * The core modules under mutation testing, each held to MUTATION_THRESHOLD on its own. A path
 * ending in `/` is a folder counted as one module (every .ts file in it is mutated).
 */
export const CORE_MODULES = [
  'src/lib/money.ts',
  'src/observability/redact.ts',
  'src/ratelimit/',
  'src/modules/budgets/alert-rules.ts',
  'src/modules/budgets/periods.ts',
  'src/modules/auth/tokens.ts',
  'src/http/errors.ts',
];

export const MUTATION_THRESHOLD = 85;

/** Stryker `mutate` patterns for a list of modules. */
export const mutatePatterns = (modules) => modules.map((m) => (m.endsWith('/') ? `${m}*.ts` : m));

/** The module a source file belongs to, or undefined when it is not a core file. */
export const moduleOf = (file) =>
  CORE_MODULES.find((m) => (m.endsWith('/') ? file.startsWith(m) && !file.slice(m.length).includes('/') && file.endsWith('.ts') : file === m));

import { defineConfig } from 'vitest/config';

// Tests by tier, chosen by file suffix (STYLE.md): unit and contract run anywhere on the
// embedded adapters; int needs the real services from `scripts/services.sh up`.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['**/*.unit.test.ts'], exclude: ['node_modules/**', 'dist/**'] } },
      { test: { name: 'contract', include: ['**/*.contract.test.ts'], exclude: ['node_modules/**', 'dist/**'], testTimeout: 30_000 } },
      {
        test: {
          name: 'int',
          include: ['**/*.int.test.ts', '**/*.chaos.test.ts'],
          exclude: ['node_modules/**', 'dist/**'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.switchyard/**', 'coverage/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver': { typescript: true, node: true }, 'import-x/extensions': ['.ts', '.js'] },
    rules: {
      // Dependency arrows point inward (STYLE.md 8): no module cycles.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // Pure cores: no clock and no randomness (the replay verifier depends on it).
    files: ['services/*/decide.ts', 'services/*/state.ts', 'services/*/core/**/*.ts', 'services/*/policies/**/*.ts', 'services/router/hash.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Pass time in (command.now).' },
        { object: 'Math', property: 'random', message: 'Use a hash of ids instead.' },
        { object: 'performance', property: 'now', message: 'Pass time in.' },
      ],
    },
  },
);

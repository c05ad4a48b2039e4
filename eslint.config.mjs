// One lint setup for the whole workspace: ESLint's and typescript-eslint's recommended rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';

/** Into another lib's internals: `.../libs/<lib>/src/<file>` from outside, `../../<lib>/src/<file>` from a lib. */
const DEEP_IMPORT = {
  regex: '(^|/)(libs/)?(core|provisioner|billing|contracts)/src/.+',
  message: 'import a lib through its index (libs/<lib>/src), not its internals (export what is needed from the index)',
};
/** A lib importing an app: libs are below apps. */
const UPWARD_IMPORT = { regex: '(^|/)apps/', message: 'a lib never imports an app (apps import libs)' };
/** The contracts are imported by the console (a browser bundle): they depend on zod alone. */
const CONTRACTS_LEAF = { regex: '(^|/)(libs/)?(core|provisioner|billing)/src', message: 'libs/contracts is a leaf (the console bundles it): it imports zod and nothing of ours' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.local/**', 'libs/core/src/generated/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Tests read loosely-typed JSON answers.
    },
  },
  // Layers: an app or a lib reaches another lib only through its index (libs/<lib>/src), never
  // its internals; a lib never imports an app. The console is a browser bundle and its types
  // are its own for now (tests read internals on purpose).
  {
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: ['apps/console/**', '**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [DEEP_IMPORT] }] },
  },
  {
    files: ['libs/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [DEEP_IMPORT, UPWARD_IMPORT] }] },
  },
  {
    files: ['libs/contracts/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [DEEP_IMPORT, UPWARD_IMPORT, CONTRACTS_LEAF] }] },
  },
  // The console (apps/console, React): the rules of hooks besides the TypeScript ones.
  {
    files: ['apps/console/**/*.{ts,tsx}'],
    ...reactHooks.configs.flat.recommended,
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', '**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);

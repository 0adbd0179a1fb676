// Rules the tools enforce (issue 9): type-aware no-floating-promises, and the layer rules of the
// developers' guide — lower layers never import upper ones; workflows/ is deterministic Temporal
// code that names activities by type only. test/architecture/lint.test.ts runs this in `npm test`.
import tseslint from 'typescript-eslint';

const upperFromActivities = {
  regex: '(^|/)app/',
  message: 'activities/ and workflows/ never import app/ (lower layers never import upper ones).',
};
// app/ reads the environment once, through its settings schema (app/settings/), and passes typed values down.
const noEnvBelowApp = {
  files: ['activities/**/*.ts', 'pipeline/**/*.ts'], // workflows/ refuses `process` altogether (below)
  rules: {
    'no-restricted-properties': [
      'error',
      {
        object: 'process',
        property: 'env',
        message: 'no process.env below app/: app/ reads the environment (app/settings/) and passes typed values down.',
      },
    ],
  },
};
const upperFromPipeline = {
  regex: '(^|/)(app|activities|workflows|templates)/',
  message: 'pipeline/ (the file format) imports no other layer.',
};

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      '.build/**',
      'test-results/**',
      '**/*.d.ts',
      'deploy/**',
      'examples/**',
      'templates/**',
      'bin/**',
      'docs/**',
      'schema/**',
      '*.config.ts',
      '*.config.js',
    ],
  },
  {
    files: ['**/*.ts', '**/*.mts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  noEnvBelowApp,
  {
    files: ['activities/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [upperFromActivities] }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression[source.value=/(^|\\/)app\\//]', message: upperFromActivities.message },
      ],
    },
  },
  {
    files: ['pipeline/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [upperFromPipeline] }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'pipeline/ loads nothing at run time.' },
      ],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            upperFromActivities,
            {
              regex: '(^|/)activities/',
              allowTypeImports: true,
              message:
                'workflows/ names activity types only (import type); activity code runs in the worker, not the workflow sandbox.',
            },
            {
              regex: '^node:',
              message: 'workflows/ is deterministic: no Node built-ins (the workflow sandbox refuses them).',
            },
            {
              regex: '^@temporalio/(?!workflow$|common$)',
              allowTypeImports: true,
              message: 'workflows/ loads only @temporalio/workflow and @temporalio/common at run time.',
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'workflows/ is deterministic: no dynamic import.' },
      ],
      // Globals the workflow sandbox does not make deterministic (Date and Math.random it does replace).
      'no-restricted-globals': [
        'error',
        ...['process', 'require', 'fetch', 'setTimeout', 'setInterval', 'crypto'].map((name) => ({
          name,
          message: `workflows/ is deterministic: no ${name} (use @temporalio/workflow's sleep, uuid4, activities).`,
        })),
      ],
    },
  },
);

// Rules the tools enforce (issue 9): type-aware no-floating-promises, and the layer rules of the
// developers' guide — lower layers never import upper ones; workflows/ is deterministic Temporal
// code that names activities by type only; model/ (the shared nouns) is a leaf every layer may
// import. test/architecture/lint.test.ts runs this in `npm test`.
import tseslint from 'typescript-eslint';

const upperFromActivities = {
  regex: '(^|/)app/',
  message: 'activities/ and workflows/ never import app/ (lower layers never import upper ones).',
};
const otherFromModel = {
  regex: '(^|/)(app|activities|workflows|templates|bench|test)/',
  message: 'model/ (the shared data types) is a leaf: it imports only model/ and pipeline/ types.',
};
const nonTypeFromPipeline = {
  regex: '(^|/)pipeline/',
  allowTypeImports: true,
  message: 'model/ names pipeline/ types only (import type): it is bundled into workflows.',
};
// Deterministic code only: workflows/ and model/ (which the workflow bundle includes).
const nodeBuiltins = {
  regex: '^node:',
  message: 'workflows/ and model/ are deterministic: no Node built-ins (the workflow sandbox refuses them).',
};
const temporalRuntime = {
  regex: '^@temporalio/(?!workflow$|common$)',
  allowTypeImports: true,
  message: 'workflows/ and model/ load only @temporalio/workflow and @temporalio/common at run time.',
};
// Globals the workflow sandbox does not make deterministic (Date and Math.random it does replace).
const sandboxGlobals = [
  'error',
  ...['process', 'require', 'fetch', 'setTimeout', 'setInterval', 'crypto'].map((name) => ({
    name,
    message: `workflows/ and model/ are deterministic: no ${name} (use @temporalio/workflow's sleep, uuid4, activities).`,
  })),
];
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
  regex: '(^|/)(app|activities|workflows|model|templates)/',
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
            nodeBuiltins,
            temporalRuntime,
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'workflows/ is deterministic: no dynamic import.' },
      ],
      'no-restricted-globals': sandboxGlobals,
    },
  },
  {
    files: ['model/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [otherFromModel, nonTypeFromPipeline, nodeBuiltins, temporalRuntime] },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'model/ loads nothing at run time (it is bundled into workflows).' },
      ],
      'no-restricted-globals': sandboxGlobals,
    },
  },
);

/** One jest run over every workspace: unit tests `*.test.ts` beside the code, integration `*.int.test.ts`. */
export default {
  testEnvironment: '<rootDir>/jest.environment.js',
  roots: ['<rootDir>/packages', '<rootDir>/apps'],
  testMatch: ['**/src/**/*.test.ts', '**/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^@dynasyn/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
    // a package's subpath export (`@dynasyn/dynasyn/inputs`) is its src file of that name
    '^@dynasyn/([a-z-]+)/([a-z-]+)$': '<rootDir>/packages/$1/src/$2.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  // ESM-only packages that CommonJS code require()s (see the transform's header): transformed, not ignored.
  transformIgnorePatterns: ['^(?!.*/node_modules/(cookie|content-disposition)/).*/node_modules/'],
  transform: {
    '/node_modules/(cookie|content-disposition)/.+\\.js$': '<rootDir>/apps/api/src/testing/esm-to-cjs.cjs',
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.jest.json' }],
  },
  testTimeout: 120000,
};

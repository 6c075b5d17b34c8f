import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['__tests__/unit/**/*.test.ts'],
          environment: 'node'
        }
      },
      {
        test: {
          name: 'e2e',
          include: ['__tests__/e2e/**/*.test.ts'],
          environment: 'node',
          // One local cluster serves every end-to-end file; they must not run at once.
          fileParallelism: false,
          testTimeout: 15 * 60_000,
          hookTimeout: 15 * 60_000
        }
      }
    ]
  }
})

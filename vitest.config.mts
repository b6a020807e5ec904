import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Child processes and worker terminations take their time on a busy
    // 2-core machine; a hang still fails, just later.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});

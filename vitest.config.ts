import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests sign in against real loopback servers and wait for scheduled refreshes.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
})

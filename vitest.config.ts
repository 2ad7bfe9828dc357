import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // Real Docker: image builds and container starts are slow on 2 cores.
          testTimeout: 300_000,
          hookTimeout: 600_000,
          // Files run in parallel but each file's tests run in order.
          maxWorkers: 2,
        },
      },
    ],
  },
});

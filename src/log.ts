// One logger for the whole host side. It writes to stderr (fd 2) only:
// stdout is the MCP channel and must carry nothing but protocol messages.
import { pino, type Logger } from "pino";

export const logger: Logger = pino(
  {
    name: "bot-bottle",
    level: process.env.BOTTLE_LOG_LEVEL ?? "info",
    // Belt and braces: even if a caller logs an object holding one of these
    // keys, its value never reaches the log.
    redact: {
      paths: ["*.value", "*.token", "*.secret", "*.password", "env.*", "*.env.*"],
      censor: "[redacted]",
    },
  },
  pino.destination({ fd: 2, sync: true }),
);

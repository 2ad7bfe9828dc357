// Secret-shaped samples for DLP tests, assembled at runtime so no literal
// token-looking string sits in the repository (secret scanners would flag it).
const rep = (s: string, n: number) => s.repeat(Math.ceil(n / s.length)).slice(0, n);
const b64url = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");

export const SECRET_SAMPLES: Record<string, string> = {
  "aws-access-key": `AKIA${rep("IOSFODNN7EXAMPL", 16)}`,
  "github-token": `ghp_${rep("a1B2c3D4e5", 36)}`,
  "github-pat": `github_pat_${rep("11ABCDEFG0", 40)}`,
  "anthropic-key": `sk-ant-api03-${rep("xY9_zW8-", 40)}`,
  "openai-key": `sk-proj-${rep("Qw3rTy7u", 40)}`,
  "private-key": ["-----BEGIN", "EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----"].join(" "),
  "slack-token": `xoxb-${rep("1234567890", 12)}-${rep("abcdEFGH", 24)}`,
  jwt: `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ sub: "agent", iat: 1700000000 })}.${rep("sIgNaTuRe_-", 43)}`,
};

/** Which rule each sample must trigger. */
export const SAMPLE_RULE: Record<string, string> = {
  "aws-access-key": "aws-access-key",
  "github-token": "github-token",
  "github-pat": "github-token",
  "anthropic-key": "anthropic-key",
  "openai-key": "openai-key",
  "private-key": "private-key",
  "slack-token": "slack-token",
  jwt: "jwt",
};

// What the hostile-client scripts (bench/hostile.mjs, bench/hostile_session.mjs) share: tokens
// signed with their secret, a server process's CPU seconds from /proc, and a sleep.
import { execSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

const CLK_TCK = Number(execSync('getconf CLK_TCK').toString().trim());

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// An HS256 token for `sub`, valid an hour, signed with `secret`.
export function token(secret, sub) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iat: now, exp: now + 3600 })}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

// User plus system CPU time of process `pid`, in seconds (fields 14 and 15 of /proc/PID/stat).
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

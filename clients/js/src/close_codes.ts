// The server's close codes, what they mean and whether to reconnect: a copy of
// src/ws/close_codes.hpp, checked against `zena-realtime codes` by a test.

export interface CloseCodeInfo {
  readonly code: number;
  readonly name: string;
  readonly reconnect: boolean;
}

export const CLOSE_CODES: readonly CloseCodeInfo[] = [
  { code: 1000, name: 'normal', reconnect: false },
  { code: 1001, name: 'going_away', reconnect: true },
  { code: 1002, name: 'protocol_error', reconnect: false },
  { code: 1003, name: 'unsupported_data', reconnect: false },
  { code: 1007, name: 'invalid_payload', reconnect: false },
  { code: 1008, name: 'policy_violation', reconnect: false },
  { code: 1009, name: 'message_too_big', reconnect: false },
  { code: 1011, name: 'internal_error', reconnect: true },
  { code: 1013, name: 'try_again_later', reconnect: true },
  { code: 4000, name: 'slow_consumer', reconnect: true },
  { code: 4001, name: 'disconnected', reconnect: false },
];

export function closeCodeInfo(code: number): CloseCodeInfo | undefined {
  return CLOSE_CODES.find((c) => c.code === code);
}

function codeOf(name: string): number {
  const info = CLOSE_CODES.find((c) => c.name === name);
  if (!info) throw new Error(`no close code named ${name}`);
  return info.code;
}

/** The codes the client acts on, by name; their numbers come from CLOSE_CODES. */
export const CLOSE_CODE = {
  goingAway: codeOf('going_away'),
  policyViolation: codeOf('policy_violation'),
  disconnected: codeOf('disconnected'),
} as const;

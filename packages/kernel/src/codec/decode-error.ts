/** The MQTT 5 reason codes a decode failure maps to; the connection answers (or closes) with them. */
export const DecodeReason = {
  MALFORMED_PACKET: 0x81,
  PROTOCOL_ERROR: 0x82,
  UNSUPPORTED_PROTOCOL_VERSION: 0x84,
  PACKET_TOO_LARGE: 0x95,
} as const;
export type DecodeReasonCode = (typeof DecodeReason)[keyof typeof DecodeReason];

/**
 * A packet that breaks the standard. `reasonCode` is what the connection sends back: a v5 DISCONNECT
 * (or CONNACK before the session exists), mapped to a 3.x return code or a plain close for older clients.
 */
export class DecodeError extends Error {
  readonly reasonCode: number;

  constructor(reasonCode: number, message: string) {
    super(message);
    this.name = 'DecodeError';
    this.reasonCode = reasonCode;
  }
}

export function malformed(message: string): DecodeError {
  return new DecodeError(DecodeReason.MALFORMED_PACKET, message);
}

export function protocolError(message: string): DecodeError {
  return new DecodeError(DecodeReason.PROTOCOL_ERROR, message);
}

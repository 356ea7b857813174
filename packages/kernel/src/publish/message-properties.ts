/** The application properties a message keeps from a PUBLISH (or a will) as it came off the wire. */
import type { MessageProperties } from '@rmqtt-ts/plugin-api';
import type { Properties } from '../codec/packets.js';

const NONE: MessageProperties = Object.freeze({});

export function messagePropertiesOf(p: Properties): MessageProperties {
  if (
    p.payloadFormatIndicator === undefined &&
    p.messageExpiryInterval === undefined &&
    p.contentType === undefined &&
    p.responseTopic === undefined &&
    p.correlationData === undefined &&
    p.userProperties === undefined
  ) {
    return NONE;
  }
  return {
    payloadFormatIndicator: p.payloadFormatIndicator,
    messageExpiryInterval: p.messageExpiryInterval,
    contentType: p.contentType,
    responseTopic: p.responseTopic,
    correlationData: p.correlationData,
    userProperties: p.userProperties,
  };
}

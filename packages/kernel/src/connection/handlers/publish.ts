/**
 * PUBLISH from the client: resolve the topic alias and `$delayed/`, check QoS, retain and flow control,
 * drop QoS 2 duplicates, run the pipeline, acknowledge.
 */
import { ReasonCode, isValidTopicName, topicLevels, type Message } from '@rmqtt-ts/plugin-api';
import type { PublishPacket } from '../../codec/packets.js';
import type { PublishOutcome } from '../../publish/publisher.js';
import { messagePropertiesOf } from '../../publish/message-properties.js';
import { parseDelayedTopic } from '../../router/index.js';
import type { Connection } from '../connection.js';

export function handlePublish(conn: Connection, p: PublishPacket): void | Promise<void> {
  const k = conn.kernel;
  const L = conn.listener;
  const s = conn.session!;
  const v5 = conn.version === 5;

  // topic alias (v5): alias 0 or above our maximum is invalid [MQTT-3.3.2-8, -9]
  let topic = p.topic;
  const alias = p.properties.topicAlias;
  if (alias !== undefined) {
    if (alias === 0 || alias > L.maxTopicAliases) {
      conn.protocolFailure(ReasonCode.TopicAliasInvalid, `topic alias ${alias} out of range 1..${L.maxTopicAliases}`);
      return;
    }
    const aliases = (conn.inAliases ??= new Map());
    if (topic.length > 0) {
      aliases.set(alias, topic);
    } else {
      const known = aliases.get(alias);
      if (known === undefined) {
        conn.protocolFailure(ReasonCode.ProtocolError, `topic alias ${alias} was never set`);
        return;
      }
      topic = known;
    }
  }

  // QoS above max_qos_allowed [MQTT-3.2.2-11]
  if (p.qos > L.maxQosAllowed) {
    conn.protocolFailure(ReasonCode.QoSNotSupported, `QoS ${p.qos} above the maximum ${L.maxQosAllowed}`);
    return;
  }

  // RETAIN without a retain store: v5 0x9A [MQTT-3.2.2-14]; v3 delivered as non-retained
  let retain = p.retain;
  if (retain && k.ext.retainStore === null) {
    if (v5) {
      conn.protocolFailure(ReasonCode.RetainNotSupported, 'retained messages are not available');
      return;
    }
    retain = false;
  }

  if (p.qos === 2) {
    // [MQTT-4.3.3-10] a PUBLISH whose id still awaits PUBREL is a duplicate: PUBREC again, not routed
    if (s.awaitingRel.has(p.packetId!)) {
      conn.sendAck(5, p.packetId!, ReasonCode.Success);
      return;
    }
    // inbound flow control: v5 against our Receive Maximum, v3 against max_awaiting_rel
    if (v5) {
      if (conn.inboundQos2.size + conn.pendingQos1 >= L.maxInflight) {
        conn.protocolFailure(ReasonCode.ReceiveMaximumExceeded, `more than ${L.maxInflight} QoS 1/2 messages unacknowledged`);
        return;
      }
    } else if (L.maxAwaitingRel > 0 && s.awaitingRel.size >= L.maxAwaitingRel) {
      conn.protocolFailure(ReasonCode.QuotaExceeded, `more than ${L.maxAwaitingRel} QoS 2 messages awaiting PUBREL`);
      return;
    }
  } else if (p.qos === 1 && v5 && conn.inboundQos2.size + conn.pendingQos1 >= L.maxInflight) {
    conn.protocolFailure(ReasonCode.ReceiveMaximumExceeded, `more than ${L.maxInflight} QoS 1/2 messages unacknowledged`);
    return;
  }

  // $delayed/{seconds}/{topic} when the listener allows it
  let delay = 0;
  if (L.delayedPublish && topic.startsWith('$delayed/')) {
    const d = parseDelayedTopic(topic);
    if (d === undefined || !isValidTopicName(d.topic)) {
      conn.protocolFailure(ReasonCode.TopicNameInvalid, 'malformed $delayed topic');
      return;
    }
    delay = d.delaySeconds;
    topic = d.topic;
  }
  if (L.maxTopicLevels > 0 && topicLevels(topic) > L.maxTopicLevels) {
    conn.protocolFailure(ReasonCode.TopicNameInvalid, `topic has more than ${L.maxTopicLevels} levels`);
    return;
  }

  const msg: Message = k.publisher.createMessage({
    topic,
    payload: p.payload,
    qos: p.qos,
    retain,
    properties: v5 ? messagePropertiesOf(p.properties) : NO_PROPERTIES,
    protoVer: conn.version,
    listenerExpiryS: L.messageExpiryIntervalS,
    from: { type: s.bridgeEgress ? 'bridge' : 'custom', clientId: s.clientId, username: s.connectInfo.username, ip: conn.transport.remote.ip },
  });

  if (p.qos === 1) conn.pendingQos1++;
  else if (p.qos === 2) {
    s.addAwaitingRel(p.packetId!);
    conn.addInboundQos2(p.packetId!);
    k.metrics.gauges.in_inflights.inc();
  }
  const since = k.journal.seq;
  const r = k.publisher.publish(msg, s.info, s.superuser, delay);
  if (r instanceof Promise) return r.then((o) => acknowledge(conn, p, o, since));
  return acknowledge(conn, p, r, since);
}

const NO_PROPERTIES: Message['properties'] = Object.freeze({});

/**
 * PUBACK / PUBREC for an accepted or refused message. With a durable session store, an accepted
 * message that reached persistent sessions (or a QoS 2 packet id a persistent session must remember) is
 * acknowledged only once that is written: the promise returned holds the connection's later packets.
 */
function acknowledge(conn: Connection, p: PublishPacket, o: PublishOutcome, since: number): void | Promise<void> {
  const s = conn.session;
  if (p.qos === 1) conn.pendingQos1--;
  // a refused QoS 2 message was never accepted: its packet id must not look like a duplicate later
  if (!o.allowed && p.qos === 2 && s !== null && s.deleteAwaitingRel(p.packetId!)) {
    conn.kernel.metrics.gauges.in_inflights.dec();
    conn.deleteInboundQos2(p.packetId!);
  }
  if (conn.closed) return;
  if (!o.allowed) {
    if (o.disconnect) {
      conn.disconnect(o.reasonCode, 'publish not authorized');
      return;
    }
    // v5: the refusal code on PUBACK/PUBREC; v3 has none, the ack says only "received"
    if (p.qos === 1) conn.sendAck(4, p.packetId!, o.reasonCode, 'publish not authorized');
    else if (p.qos === 2) conn.sendAck(5, p.packetId!, o.reasonCode, 'publish not authorized');
    return;
  }
  if (p.qos === 0) return;
  const code = conn.version === 5 ? o.reasonCode : 0;
  if (p.qos === 2 && s !== null && s.persistent) conn.kernel.journal.record({ op: 'awaitRel', clientId: s.clientId, packetId: p.packetId!, pending: true });
  return conn.sendAckWhenWritten(p.qos === 1 ? 4 : 5, p.packetId!, code, since);
}

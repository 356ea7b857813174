/** Config of the ACL plugin: RMQTT's rmqtt-acl.toml keys. */
import type { ConfigSchema } from '@rmqtt-ts/plugin-api';
import { rulesFormat } from './rules.js';

export interface AclConfig {
  /** A denied PUBLISH closes the connection (otherwise a v5 client gets 0x87 on PUBACK/PUBREC). */
  disconnect_if_pub_rejected: boolean;
  /** Hook priority: higher runs first (auth-http is 100). */
  priority: number;
  /** `[permission, who, action?, topics?]`, top-down, first hit wins, no hit = deny. */
  rules: unknown[];
}

export const configSchema: ConfigSchema = {
  disconnect_if_pub_rejected: { doc: 'Close the connection of a client whose PUBLISH is denied.', format: 'bool', default: true },
  priority: { doc: 'Priority of the ACL hooks (higher runs first; auth-http is 100).', format: 'nat', default: 10 },
  rules: {
    doc: 'Rules [permission, who, action?, topics?], first hit wins, no hit = deny.',
    format: function rules(value: unknown): void {
      rulesFormat(value);
    },
    default: [['allow', 'all']],
  },
};

/** Topic mapping of bridge entries: templates such as `remote/${local.topic}` and skipped levels. */

/** `topic` without its first `n` levels (`a/b/c/d`, 2 → `c/d`); '' when it has no more than `n`. */
export function skipLevels(topic: string, n: number): string {
  if (n <= 0) return topic;
  let i = -1;
  for (let k = 0; k < n; k++) {
    i = topic.indexOf('/', i + 1);
    if (i < 0) return '';
  }
  return topic.slice(i + 1);
}

/** A compiled template: `fill(value)` puts `value` wherever `placeholder` was. */
export interface TopicTemplate {
  readonly text: string;
  readonly hasPlaceholder: boolean;
  fill(value: string): string;
}

export function topicTemplate(text: string, placeholder: string): TopicTemplate {
  const parts = text.split(placeholder);
  if (parts.length === 1) return { text, hasPlaceholder: false, fill: () => text };
  if (parts.length === 2) {
    const [a, b] = parts as [string, string];
    return { text, hasPlaceholder: true, fill: (v) => a + v + b };
  }
  return { text, hasPlaceholder: true, fill: (v) => parts.join(v) };
}

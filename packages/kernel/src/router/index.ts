export { TopicTrie, type TopicTrieOptions } from './trie.js';
export { SharedSelector, hashString } from './shared.js';
export { parseSubscriptionFilter, parseDelayedTopic, type ParsedFilter, type FilterParseOptions } from './special.js';
export { SubscriptionLimits } from './limits.js';

/**
 * The wire types of the tern protocol (docs/protocol.md), as the JSON codec
 * carries them. Every timestamp is in milliseconds since the Unix epoch.
 */
export {};

/** A small typed event emitter (no dependency on Node's `events`). */
export type Listener<T> = (value: T) => void;
export declare class Emitter<Events extends {
    [K in keyof Events]: unknown;
}> {
    private readonly listeners;
    /** Adds a listener; returns a function that removes it. */
    on<K extends keyof Events>(type: K, fn: Listener<Events[K]>): () => void;
    /** Like `on`, for one event only. */
    once<K extends keyof Events>(type: K, fn: Listener<Events[K]>): () => void;
    off<K extends keyof Events>(type: K, fn: Listener<Events[K]>): void;
    protected emit<K extends keyof Events>(type: K, value: Events[K]): void;
}

/** A small typed event emitter (no dependency on Node's `events`). */
export class Emitter {
    listeners = new Map();
    /** Adds a listener; returns a function that removes it. */
    on(type, fn) {
        let set = this.listeners.get(type);
        if (!set) {
            set = new Set();
            this.listeners.set(type, set);
        }
        set.add(fn);
        return () => this.off(type, fn);
    }
    /** Like `on`, for one event only. */
    once(type, fn) {
        const off = this.on(type, (v) => {
            off();
            fn(v);
        });
        return off;
    }
    off(type, fn) {
        this.listeners.get(type)?.delete(fn);
    }
    emit(type, value) {
        const set = this.listeners.get(type);
        if (!set)
            return;
        for (const fn of [...set]) {
            try {
                fn(value);
            }
            catch (e) {
                // A failing listener must not break delivery to the others.
                console.error("tern: an event listener threw", e);
            }
        }
    }
}

/**
 * Per-conversation sequence tracking: drops duplicate pushes and reveals
 * gaps (seqs are 1, 2, 3, … with no gaps and no duplicates).
 */
export class SeqTracker {
    convs = new Map();
    /** Everything up to `lastSeq` counts as seen; never moves backwards. */
    track(conv, lastSeq) {
        let c = this.convs.get(conv);
        if (!c) {
            c = { contiguous: 0, ahead: new Set() };
            this.convs.set(conv, c);
        }
        if (lastSeq > c.contiguous) {
            c.contiguous = lastSeq;
            absorb(c);
        }
    }
    untrack(conv) {
        this.convs.delete(conv);
    }
    /** The highest contiguous seq seen, or `undefined` if untracked. */
    lastSeen(conv) {
        return this.convs.get(conv)?.contiguous;
    }
    /** Every tracked conversation with its last contiguous seq. */
    snapshot() {
        return [...this.convs].map(([conv, c]) => [conv, c.contiguous]);
    }
    check(conv, seq) {
        const c = this.convs.get(conv);
        if (!c)
            return { kind: "untracked" };
        if (seq <= c.contiguous || c.ahead.has(seq))
            return { kind: "duplicate" };
        if (seq === c.contiguous + 1)
            return { kind: "next" };
        return { kind: "gap", after: c.contiguous };
    }
    /** Records a delivered message; returns what `check` said before. */
    accept(conv, seq) {
        const verdict = this.check(conv, seq);
        if (verdict.kind === "untracked" || verdict.kind === "next")
            this.track(conv, seq);
        return verdict;
    }
    /**
     * Records the ack of one of our own sends (the server pushes it only to
     * our other sessions). Untracked conversations stay untracked.
     */
    recordOwn(conv, seq) {
        const c = this.convs.get(conv);
        if (c && seq > c.contiguous) {
            c.ahead.add(seq);
            absorb(c);
        }
    }
}
function absorb(c) {
    while (c.ahead.delete(c.contiguous + 1))
        c.contiguous += 1;
    for (const s of c.ahead)
        if (s <= c.contiguous)
            c.ahead.delete(s);
}

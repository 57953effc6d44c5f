/**
 * Per-conversation sequence tracking: drops duplicate pushes and reveals
 * gaps (seqs are 1, 2, 3, … with no gaps and no duplicates).
 */
/** What a seq means given what was seen before in its conversation. */
export type SeqCheck = {
    kind: "untracked";
} | {
    kind: "duplicate";
} | {
    kind: "next";
} | {
    kind: "gap";
    after: number;
};
export declare class SeqTracker {
    private readonly convs;
    /** Everything up to `lastSeq` counts as seen; never moves backwards. */
    track(conv: string, lastSeq: number): void;
    untrack(conv: string): void;
    /** The highest contiguous seq seen, or `undefined` if untracked. */
    lastSeen(conv: string): number | undefined;
    /** Every tracked conversation with its last contiguous seq. */
    snapshot(): Array<[string, number]>;
    check(conv: string, seq: number): SeqCheck;
    /** Records a delivered message; returns what `check` said before. */
    accept(conv: string, seq: number): SeqCheck;
    /**
     * Records the ack of one of our own sends (the server pushes it only to
     * our other sessions). Untracked conversations stay untracked.
     */
    recordOwn(conv: string, seq: number): void;
}

// Package mdb is an MDB/ICP cashless device ("reader", section 7 of the
// MDB/ICP 4.2 standard) for kioskd: the 9-bit word codec and the
// reader's state machine, with no transport, no clock of its own and no
// business decisions. A vending machine controller (VMC) asks for a vend;
// the payment side, outside this package, takes the card payment and
// answers Approve or Deny.
//
// # Words, blocks, replies
//
// A Word is eight data bits and the mode bit (bit 8). A VMC block is an
// address byte with the mode bit (address in the upper five bits, the
// command in the lower three), data bytes, and a checksum (the sum of
// all of them, carries dropped). A peripheral's data reply is data bytes
// and a checksum that carries the mode bit; ACK (00h) and NAK (FFh) go
// alone with the mode bit. After a data reply the VMC answers with one
// unmarked word: ACK, RET (AAh, send it again) or NAK. Blocks are at most
// 36 bytes. ParseCommand and ParseReply are total: any words get nil or
// a sentinel (ErrChecksum, ErrTooLong, ErrFraming, ...).
//
// # The device
//
// A transport calls Device.Handle with every unit it reads off the bus:
// each whole block (cut at the next marked word or the inter-byte gap)
// and each lone handshake word, including blocks addressed to other
// peripherals. Handle returns the words to send, or nil for silence.
// Handle is the hot path: it must run on a goroutine locked to an OS
// thread that answers within the standard's 5 ms. It allocates nothing
// (the allocation tests hold it to that), its work is bounded by the
// block, and the payment side's calls only hold the same short mutex.
//
// The payment side drains events with Events after Notify fires, and
// answers vends with Approve(id, amount) and Deny(id); CancelSession,
// BeginSession and Malfunction queue the other poll responses. Approve
// and Deny name the vend by the id of its EventVendRequested, so that a
// late answer to one vend can never approve the next.
//
// Money is integer sen. Prices on the wire are scaled units (Scale:
// factor and decimal places, sen by default: factor 1, two decimals);
// conversions are exact or refused, never rounded.
//
// # What a VMC sees during a slow card payment
//
// With the defaults (Application Maximum Response Time 60 s, margin 2 s):
//
//  1. Setup: Reader Config Data says level 3, currency 1458 (ringgit),
//     factor 1, two decimals, 60 s, and the misc options below. Request
//     ID returns the Peripheral ID; at level 3 its option bits offer
//     "always idle" only.
//  2. Idle: every POLL is answered ACK. With always idle enabled nothing
//     else is needed; otherwise the payment side (or AutoSession) queues
//     Begin Session, funds unknown (FFFFh) unless given.
//  3. Vend Request(price, item): ACKed at once; the device is in the
//     Vend state and the payment side gets EventVendRequested.
//  4. While the card payment runs (often 30-60 s) every POLL is answered
//     ACK, never silence, so the VMC's non-response timer keeps being
//     restarted; it waits for the result for the time given in Reader
//     Config Data, counted from that ACK.
//  5. Approved: the next POLL carries Vend Approved with the amount; the
//     VMC ACKs it, dispenses, sends Vend Success (EventVendSucceeded) or
//     Vend Failure (EventVendFailed, a refund owed), then Session
//     Complete, and the next POLL carries End Session.
//  6. Declined: the next POLL carries Vend Denied.
//  7. Too slow: 58 s after the ACK the device stops waiting and the next
//     POLL carries Vend Denied (EventVendTimedOut): the VMC hears a
//     denial, not its own timeout. An approval after that is refused
//     (ErrTooLate, ErrNoVend) and the payment side must void or refund.
//  8. The customer gives up at the machine: Vend Cancel, ACK, the next
//     POLL carries Vend Denied (EventVendCancelled).
//  9. Reset at any point: ACK, Just Reset on the next POLL; the payment
//     side learns what became of the vend (below).
//
// # Options
//
// Level 3 "always idle" (option bit 5) is offered and used when the VMC
// enables it: a Vend Request in the Enabled state opens an implicit
// session, which the VMC closes with Session Complete as usual. Not
// offered: file transport, 32-bit money, multi-currency, negative vend,
// data entry; at level 2 or 3 Revalue is answered Revalue Denied (limit
// zero). Misc
// options in Reader Config Data: b0 refunds off (kioskd records a refund
// owed, it does not credit a card by itself; Config.Refunds), b1
// multivend off (one payment, one item; Config.Multivend), b2 no reader
// display, b3 cash sale on (audit; Config.NoCashSale).
//
// # Choices where the standard leaves one
//
//   - Before Setup the VMC's level is unknown; responses use level 1
//     formats until Setup Config Data says otherwise, and afterwards the
//     lower of the two levels.
//   - Setup Config Data alone moves Inactive to Disabled; Max/Min Prices
//     is taken whenever it comes. A Just Reset still queued when Setup
//     Config Data arrives is dropped: the VMC has evidently seen the reset.
//   - Reader Config Data, Peripheral ID, Cancelled and the Revalue answers
//     are sent at once, alone; if the VMC misses one it rides on the next
//     POLL. Begin Session, Vend Approved/Denied, End Session and the error
//     responses are always poll responses; several share a reply when
//     they fit in 36 bytes, oldest first.
//   - The device is never silent to a command it received intact: it ACKs
//     polls while busy (the standard also allows silence) and ACKs the
//     poll after Vend Failure at once (the refund is the payment side's).
//   - The vend deadline is MaxResponse less VendMargin from the Vend
//     Request's ACK; then the device denies the vend itself.
//   - Reset mid-vend: the standard takes a reset after Vend Approved as a
//     Vend Success. kioskd does not guess: if Vend Approved may have
//     reached the VMC (sent, whether or not its ACK came back) the
//     payment side gets EventVendUnconfirmed, to be journaled as
//     vend_unknown; if it never left the device, EventVendCancelled
//     (Approved set when the payment side had approved, so the money is
//     given back). Nothing is approved twice: the approval dies with the
//     reset.
//   - Vend Cancel after the payment side approved but before the VMC took
//     the approval: the approval is withdrawn and Vend Denied sent, since
//     a VMC holding an approval would not cancel. After the VMC ACKed
//     Vend Approved, Vend Cancel is out of sequence.
//   - Proof of delivery: Vend Success or Failure after a Vend Approved
//     whose ACK was lost counts as delivery (the approval is not sent
//     again); so do Vend Request and Session Complete after a Begin
//     Session whose ACK was lost; a Vend Request proves an earlier Vend
//     Denied arrived, and Session Complete makes a queued Vend Denied or
//     Session Cancel moot: they are dropped, where repeated they would
//     read as answers about the next vend or session. Otherwise a lost
//     VMC ACK makes the device repeat its reply on the next POLL, as the
//     standard requires.
//   - Messages queued before Setup Config Data are resized to the level
//     it brings (Command Out Of Sequence, Begin Session).
//   - CancelSession while the payment is pending denies the vend first
//     (Vend Denied, then Session Cancel Request in one reply); with an
//     approval out, the VMC finishes the vend before it completes the
//     session.
//   - A command repeated with nothing in between (the VMC missed our
//     reply) gets the same reply again and is not acted on twice; POLL is
//     exempt.
//   - Any block, including a corrupted one or one for another address,
//     closes the window for a handshake: an ACK after it is not ours.
//     Corrupted blocks get silence. A command with too few data bytes is
//     out of sequence; extra bytes are ignored.
//   - Commands of options never offered (negative vend, data entry, file
//     transport, user files) and unknown commands get ACK and Command Out
//     Of Sequence. Write Time/Date and Diagnostics are ACKed and ignored.
//     Bits of Enable Options that were not offered are ignored.
//   - Session Complete with no session open (Enabled, Disabled) gets End
//     Session anyway, to bring a confused VMC back in step, rather than
//     Command Out Of Sequence.
//   - Reader Disable during a session lets it finish, then the device is
//     Disabled; a Begin Session the VMC has not yet taken is withdrawn.
//     Reader Enable before Setup is out of sequence. Reader Cancel is
//     answered Cancelled outside a session, out of sequence in one.
//   - Without multivend a second Vend Request in a session is denied.
//   - Prices: a zero or FFFFh price, or one that is not a whole number of
//     sen, is denied without a payment (EventVendRefused); an approval may
//     be less than the price, never more; Funds Available is rounded down
//     and capped at FFFEh; a cash sale price that does not convert is
//     reported as -1 with the raw value.
//   - Begin Session at level 2/3: payment media ID unknown (FFFFFFFFh),
//     payment type 00h (normal card, VMC prices), payment data 0000h.
//   - Peripheral ID text fields are padded with spaces; the default
//     manufacturer code "KSK" is kioskd's own, not an EVA-DTS registered
//     one, and should be configured. The currency is always sent in the
//     ISO 4217 form (leading digit 1), which level 3 requires and level
//     1 allows.
//   - Malfunction reports are transient: sent once.
//   - Events are kept in a bounded ring; a Vend Request is denied
//     (CauseBacklog) while fewer than eight slots are free, so the
//     outcome of a vend already started is never lost.
//
// The transports (the Pi's UART with mark/space parity, interface
// boards, a byte stream for simulators) and the wiring into payment are
// later steps; the vmcsim package plays the VMC for tests.
package mdb

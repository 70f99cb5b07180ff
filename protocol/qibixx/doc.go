// Package qibixx speaks to a Qibixx MDB interface (the MDB Pi HAT on the
// Pi's UART, or the MDB-USB as /dev/ttyACM0) in its cashless slave mode.
// The board answers the VMC on the bus itself, polls, ACKs and timing
// included, and tells its host what the VMC wants in ASCII lines; the
// host answers with commands. kioskd is that host.
//
// The wire, as Qibixx's public pages describe it (docs/mdb.md, "Transport
// B", lists them): 115200 baud 8N1; one message a line; commands from the
// host begin with an upper-case letter ("C" for the cashless slave), the
// board's answers and events with the lower-case one ("c"), fields
// separated by commas:
//
//	host  -> board   C,0 / C,1                      slave off / on
//	host  -> board   C,SETCONF,<key>=<value>        while off; c,SET,OK
//	board -> host    c,STATUS,ENABLED               the VMC enabled the reader
//	board -> host    c,STATUS,VEND,1.50,12          Vend Request: price, item
//	host  -> board   C,VEND,1.50                    approve, for that amount
//	host  -> board   C,STOP                         deny
//	board -> host    c,VEND,SUCCESS                 dispensed
//	board -> host    c,ERR,VEND 3                   Vend Failure
//	board -> host    c,STATUS,IDLE / ENABLED        the session winds down
//
// ParseLine and the Append encoders are pure; Reader is the driver that
// runs them over a line link and presents the payment side with the
// same events and answers as protocol/mdb's Device.
package qibixx

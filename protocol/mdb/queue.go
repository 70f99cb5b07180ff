package mdb

// The poll queue: what the reader has to say, sent on the VMC's POLL (or
// at once, for the answers the standard wants immediately), several
// messages to a reply within MaxBlock.

// ack answers with a bare ACK; no handshake follows it.
func (d *Device) ack() []Word {
	d.out[0] = Mark(ACK)
	d.outN = 1
	d.awaiting, d.inFlight, d.lastFlight = false, 0, 0
	return d.out[:1]
}

// immediate answers a command with m alone. m goes to the front of the
// queue, so that if the VMC misses it, the next poll carries it.
func (d *Device) immediate(m msg) []Word {
	// An earlier copy the VMC missed (NAK, then the command again) would
	// otherwise follow on a poll, unasked for.
	d.dropCode(m.code)
	if d.qn == queueCap {
		d.qn-- // the last queued message is worth less than the answer asked for now
	}
	copy(d.q[1:d.qn+1], d.q[:d.qn])
	d.q[0] = m
	d.qn++
	return d.send(1)
}

// send puts up to max queued messages, as many as fit one block, into a
// reply; with none queued it answers ACK.
func (d *Device) send(max int) []Word {
	k, size := 0, 0
	for k < d.qn && k < max && size+int(d.q[k].n) <= MaxReplyData {
		size += int(d.q[k].n)
		k++
	}
	if k == 0 {
		return d.ack()
	}
	out := d.out[:0]
	var sum byte
	for i := 0; i < k; i++ {
		for _, b := range d.q[i].bytes() {
			out = append(out, Data(b))
			sum += b
		}
		if d.q[i].code == rspVendApproved {
			d.v.sent = true
		}
	}
	out = append(out, Mark(sum))
	d.outN = len(out)
	d.awaiting, d.inFlight, d.lastFlight = true, k, k
	return out
}

func (d *Device) push(m msg) bool {
	if d.qn == queueCap {
		return false
	}
	d.q[d.qn] = m
	d.qn++
	return true
}

// drop removes n messages from position i.
func (d *Device) drop(i, n int) {
	copy(d.q[i:], d.q[i+n:d.qn])
	d.qn -= n
}

func (d *Device) dropCode(code byte) {
	for i := 0; i < d.qn; i++ {
		if d.q[i].code == code {
			d.drop(i, 1)
			i--
		}
	}
}

func (d *Device) queued(code byte) bool {
	for i := 0; i < d.qn; i++ {
		if d.q[i].code == code {
			return true
		}
	}
	return false
}

package payment

// heldPayloads is what the service loop holds for its next commit
// (Service.soon). Call it on the loop (a provider's callback) or with the
// loop idle: after synctest.Wait, which orders it after the loop's writes.
func (s *Service) heldPayloads() []string {
	var out []string
	for _, st := range s.later {
		if st.Ev != nil {
			out = append(out, st.Ev.Payload)
		}
	}
	return out
}

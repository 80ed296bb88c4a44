package runtime

// InFlight returns the executions holding a slot: for tests that must act
// while a run is in flight.
func (s *Session) InFlight() int { return cap(s.slots) - len(s.slots) }

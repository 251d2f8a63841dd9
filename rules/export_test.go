package rules

// ParseGeneral is Parse without the evaluation shortcuts (the cost
// bounds, the kind guards and needs of rule.matches), for the external tests
// that compare the two paths.
func ParseGeneral(name string, data []byte) (*Set, error) { return parse(name, data, false) }

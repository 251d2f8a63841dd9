package toolgate

import "testing"

func TestStricter(t *testing.T) {
	for _, tc := range []struct{ a, b, want Action }{
		{Allow, Review, Review}, {Review, Allow, Review}, {Review, Deny, Deny}, {Allow, Allow, Allow},
		{Allow, "", ""}, {"bogus", Deny, "bogus"}, {Deny, "bogus", Deny},
	} {
		if got := Stricter(tc.a, tc.b); got != tc.want {
			t.Errorf("Stricter(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

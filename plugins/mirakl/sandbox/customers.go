package sandbox

import (
	"fmt"
	"math/rand"
)

// UK buyers with the punctuation that breaks naive CSV/SQL/XML handling:
// apostrophes, commas, full stops.
var (
	firstNames = []string{"Siobhan", "Ciarán", "Olivia", "Jack", "Amelia", "Harry", "Isla", "George", "Aoife", "Noah", "Zoë", "Rhys"}
	lastNames  = []string{"O'Neill", "D'Souza", "Smith", "McAllister", "O'Brien", "Jones", "Taylor-Wood", "Ní Bhriain", "Williams", "St. Clair", "Brown", "Evans"}
	streets    = []struct{ street1, street2, city, zip string }{
		{"Flat 2, O'Neill House", "12 Abbey Road", "London", "NW8 9AY"},
		{"7 St. John's Wood Terrace", "", "London", "NW8 6JJ"},
		{"The Old Rectory", "Church Lane, Little Snoring", "Fakenham", "NR21 0AA"},
		{"14 Queen's Road", "", "Brighton", "BN1 3XE"},
		{"Apartment 5, 1 Merchant's Quay", "", "Belfast", "BT1 3AA"},
		{"22 High Street", "Bishop's Stortford", "Hertfordshire", "CM23 2LY"},
		{"3 Prince's Street", "", "Edinburgh", "EH2 2AN"},
		{"Unit 4, Lamb's Court", "Canal Side", "Cardiff", "CF10 5AL"},
	}
	civilities = []string{"Mr", "Mrs", "Ms", "Miss"}
)

// randomCustomer draws a buyer from rng.
func randomCustomer(rng *rand.Rand, seq int) customer {
	fn := firstNames[rng.Intn(len(firstNames))]
	ln := lastNames[rng.Intn(len(lastNames))]
	st := streets[rng.Intn(len(streets))]
	a := address{Street1: st.street1, Street2: st.street2, City: st.city, ZipCode: st.zip,
		Phone: fmt.Sprintf("07700 9%05d", rng.Intn(100000))}
	c := customer{ID: fmt.Sprintf("CUST-%06d", 100000+seq), Civility: civilities[rng.Intn(len(civilities))],
		FirstName: fn, LastName: ln, Shipping: a, Billing: a}
	if rng.Intn(4) == 0 { // a quarter bill elsewhere
		b := streets[rng.Intn(len(streets))]
		c.Billing = address{Street1: b.street1, Street2: b.street2, City: b.city, ZipCode: b.zip, Phone: a.Phone}
	}
	return c
}

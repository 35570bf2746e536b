// Package sandboxkit holds what the Mirakl and Peoplevox sandboxes share: a
// clock that can run faster than real time, the physical world both fakes
// agree on (stock in the warehouse, units sold on the marketplace, oversold
// units), and a fault injector for HTTP handlers.
//
// Nothing here talks to a real system. It exists so the fakes behave like one
// business: an order placed on the Mirakl sandbox claims stock that the
// Peoplevox sandbox's warehouse physically holds, and selling more than that
// shows up as oversold units.
package sandboxkit

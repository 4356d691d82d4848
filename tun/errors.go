package tun

import "errors"

// Sentinel errors. Create and the Interface methods wrap them with the operation and the
// interface name; test for them with errors.Is.
var (
	// ErrNoTUNDevice means the TUN clone device is missing or has no driver behind it.
	ErrNoTUNDevice = errors.New("no /dev/net/tun: load the tun module (modprobe tun) or, " +
		"in a container, pass the device through")

	// ErrNoNetAdmin means the process may not create or configure network interfaces.
	ErrNoNetAdmin = errors.New("needs CAP_NET_ADMIN: run as root or grant the capability")

	// ErrLinkExists means a link of the requested name exists and is not a TUN that hoprd
	// may take over; the error names the link's kind. The link is left untouched.
	ErrLinkExists = errors.New("a link of that name exists and is not a TUN")

	// ErrLinkInUse means a TUN of the requested name exists and a process holds it open.
	// The link is left untouched.
	ErrLinkInUse = errors.New("a TUN of that name is held open by another process")

	// ErrInvalidConfig means the Config (or a prefix given at run time) cannot be applied.
	ErrInvalidConfig = errors.New("invalid interface config")

	// ErrClosed means the Interface has been closed.
	ErrClosed = errors.New("interface closed")

	// ErrRouteExists means a route to a peer's prefix exists already, put there by
	// something other than this interface; hoprd does not replace it.
	ErrRouteExists = errors.New("a route to that prefix exists already and is not hoprd's: " +
		"remove it, or narrow the peer's allowed_ips")
)

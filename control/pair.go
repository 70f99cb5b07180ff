package control

import "net"

// PairText is what a pairing QR code holds for a POS listen address: the
// bare IP when the POS app's default port is used (the app's field is
// "IP address"), else ip:port. The CLI draws it on the console and the
// machine prints it on the pairing slip; both must say the same.
func PairText(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && port == "8080" {
		return host
	}
	return addr
}

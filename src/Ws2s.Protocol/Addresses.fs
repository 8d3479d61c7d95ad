/// Address blocks and the special-purpose ranges the destination policy refuses by default (RFC 6890 and
/// friends), with the words that name each. Pure values.
module Ws2s.Protocol.Addresses

open System.Net

/// An address block such as 10.0.0.0/8 or fc00::/7 (its family is its length: 4 or 16 bytes).
type Cidr =
    { Network: byte[]
      PrefixLength: int }
    member this.Contains(address: IPAddress) =
        let bytes = address.GetAddressBytes()
        let full = this.PrefixLength / 8
        let rest = this.PrefixLength % 8
        let mask = byte (0xFF <<< (8 - rest))
        bytes.Length = this.Network.Length
        && Seq.forall (fun i -> bytes[i] = this.Network[i]) (seq { 0 .. full - 1 })
        && (rest = 0 || (bytes[full] &&& mask) = (this.Network[full] &&& mask))
    override this.ToString() = $"{IPAddress this.Network}/{this.PrefixLength}"

/// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are judged as the IPv4 address they carry.
let canonical (address: IPAddress) =
    if address.IsIPv4MappedToIPv6 then address.MapToIPv4() else address

let cidrOf (address: IPAddress) prefixLength =
    let address = canonical address
    let network = address.GetAddressBytes()
    if prefixLength < 0 || prefixLength > network.Length * 8 then None
    else Some { Network = network; PrefixLength = prefixLength }

let private cidr (text: string) =
    let slash = text.IndexOf '/'
    cidrOf (IPAddress.Parse(text.Substring(0, slash))) (int (text.Substring(slash + 1))) |> Option.get

/// This machine itself: lifted by `allowConnectToServerLocal`.
let serverLocalRanges =
    [ cidr "127.0.0.0/8", "loopback 127.0.0.0/8"
      cidr "0.0.0.0/8", "this host 0.0.0.0/8"
      cidr "::1/128", "loopback ::1"
      cidr "::/128", "unspecified ::" ]

/// Refused by default (special-purpose registries, RFC 6890 and friends) unless an address rule allows them.
let specialRanges =
    serverLocalRanges
    @ [ cidr "10.0.0.0/8", "private network 10.0.0.0/8"
        cidr "100.64.0.0/10", "shared address space 100.64.0.0/10"
        cidr "169.254.0.0/16", "link-local and cloud metadata 169.254.0.0/16"
        cidr "172.16.0.0/12", "private network 172.16.0.0/12"
        cidr "192.0.0.0/24", "IETF protocol assignments 192.0.0.0/24"
        cidr "192.0.2.0/24", "documentation 192.0.2.0/24"
        cidr "192.88.99.0/24", "6to4 relay anycast 192.88.99.0/24"
        cidr "192.168.0.0/16", "private network 192.168.0.0/16"
        cidr "198.18.0.0/15", "benchmarking 198.18.0.0/15"
        cidr "198.51.100.0/24", "documentation 198.51.100.0/24"
        cidr "203.0.113.0/24", "documentation 203.0.113.0/24"
        cidr "224.0.0.0/4", "multicast 224.0.0.0/4"
        cidr "240.0.0.0/4", "reserved 240.0.0.0/4"
        cidr "255.255.255.255/32", "broadcast 255.255.255.255"
        cidr "::/96", "IPv4-compatible ::/96"
        cidr "::ffff:0:0:0/96", "IPv4-translated ::ffff:0:0:0/96"
        cidr "64:ff9b::/96", "NAT64 64:ff9b::/96"
        cidr "64:ff9b:1::/48", "local NAT64 64:ff9b:1::/48"
        cidr "2001::/32", "Teredo 2001::/32"
        cidr "2001:db8::/32", "documentation 2001:db8::/32"
        cidr "2002::/16", "6to4 2002::/16"
        cidr "fc00::/7", "unique local fc00::/7"
        cidr "fe80::/10", "link-local fe80::/10"
        cidr "fec0::/10", "site-local fec0::/10"
        cidr "ff00::/8", "multicast ff00::/8" ]

// Package tun creates, configures and removes hoprd's network interface on Linux.
//
// The interface is a kernel TUN device opened through golang.zx2c4.com/wireguard/tun, which
// asks the kernel for virtio-net headers and TCP/UDP segmentation offloads so that one read
// or write moves many packets. Everything around the device is configured over rtnetlink:
// its MTU, its addresses, its state and one route per peer prefix.
//
// Create works in a fixed order and either finishes or leaves nothing behind:
//
//  1. check that /dev/net/tun exists and that the process holds CAP_NET_ADMIN;
//  2. look for a link of the same name: a persistent TUN with no process attached (what a
//     crashed hoprd leaves when something made its device persistent) is deleted and
//     replaced; any other link is left alone and Create fails;
//  3. create the TUN, set its MTU, add its addresses, bring it up and add its routes;
//  4. drain the device's event channel until Close.
//
// If a step fails, every earlier step is undone before Create returns. Close does the same
// for a working interface: it removes the routes and addresses it added and closes the
// device, and the kernel deletes the link with its last file descriptor.
//
// Every rtnetlink request goes through a handle opened by Create, so an Interface keeps
// managing the namespace it was created in even when later calls run on other threads.
package tun

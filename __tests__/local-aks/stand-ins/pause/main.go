// The program every container of Virtual Nodes v2's chart runs on the local AKS agent node:
// v2's images (mcr.microsoft.com/aci/virtual-node-2-*) are closed, so their processes stand
// here only as processes (a node's work is done by the v2 stand-in, virtual-nodes-v2.ts).
// Run as /initcontainer/init.sh (the init container's args) it ends at once, as an init
// container must for the pod to start; otherwise it runs until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	if filepath.Base(os.Args[0]) == "init.sh" {
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}

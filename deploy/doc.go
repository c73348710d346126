// Package deploy holds the tests of what ships Backplane to production: the container
// image (Dockerfile, and a static binary built as the image builds it) and the Helm chart
// in helm/backplane (lint, render, validation against the Kubernetes API schemas, the
// properties a platform team checks, and the alert rules).
//
// The tools these tests run (helm, kubeconform, promtool) are pinned in tools/go.mod
// beside this file, a module of their own so that their large dependency graphs never
// move the versions the product or its code generators build with. `make deploy-tools`
// builds them ahead of time; the tests build whatever is missing on first use.
package deploy

variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane (platform/versions.yaml)."
  type        = string
  validation {
    condition     = can(regex("^1\\.[0-9]+$", var.kubernetes_version))
    error_message = "kubernetes_version is a minor version such as 1.35."
  }
}

variable "addon_versions" {
  description = "Pinned build of every EKS-managed add-on (platform/versions.yaml, eks.addons)."
  type        = map(string)
  validation {
    condition     = length(setsubtract(["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "metrics-server"], keys(var.addon_versions))) == 0
    error_message = "addon_versions needs vpc-cni, coredns, kube-proxy, aws-ebs-csi-driver and metrics-server."
  }
  validation {
    condition     = alltrue([for v in values(var.addon_versions) : can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+-eksbuild\\.[0-9]+$", v))])
    error_message = "Each add-on version is an exact EKS build, e.g. v1.20.4-eksbuild.1."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets for the control-plane ENIs and every node group (never public ones)."
  type        = list(string)
  validation {
    condition     = length(var.private_subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two AZs."
  }
}

variable "endpoint_public_access" {
  description = "Also expose the API endpoint publicly (restricted to public_access_cidrs)."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach a public API endpoint; never 0.0.0.0/0."
  type        = list(string)
  default     = []
  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "public_access_cidrs must not contain 0.0.0.0/0."
  }
  # An empty list would make AWS open a public endpoint to 0.0.0.0/0.
  validation {
    condition     = !var.endpoint_public_access || length(var.public_access_cidrs) > 0
    error_message = "A public endpoint needs at least one CIDR in public_access_cidrs."
  }
}

variable "admin_role_arns" {
  description = "IAM roles granted cluster-admin through EKS access entries (operators, the CD role)."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the control-plane logs."
  type        = number
  default     = 365
}

variable "node_groups" {
  description = "Managed node groups by pool: system and inference are required, gpu is optional."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gb   = optional(number, 50)
  }))
  validation {
    condition = (
      contains(keys(var.node_groups), "system") && contains(keys(var.node_groups), "inference") &&
      length(setsubtract(keys(var.node_groups), ["system", "inference", "gpu"])) == 0
    )
    error_message = "node_groups needs the pools system and inference, and may add gpu; no others."
  }
  validation {
    condition     = alltrue([for g in values(var.node_groups) : g.min_size <= g.desired_size && g.desired_size <= g.max_size])
    error_message = "Every node group needs min_size <= desired_size <= max_size."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

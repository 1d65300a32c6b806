variable "name" {
  description = "Name prefix for the network's resources."
  type        = string
}

variable "cluster_name" {
  description = "EKS cluster that will use the subnets (for the load-balancer discovery tags)."
  type        = string
}

variable "cidr_block" {
  description = "VPC CIDR; /16 recommended (three /20 private subnets hold the pod IPs)."
  type        = string
  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && tonumber(split("/", var.cidr_block)[1]) <= 18
    error_message = "cidr_block must be a valid CIDR of size /18 or larger."
  }
}

variable "availability_zones" {
  description = "The three AZ names to use; null for the region's a, b and c zones."
  type        = list(string)
  default     = null
  validation {
    condition     = var.availability_zones == null || length(coalesce(var.availability_zones, [])) == 3
    error_message = "availability_zones must name exactly three zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper, not AZ-resilient)."
  type        = bool
  default     = false
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

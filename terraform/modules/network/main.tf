# VPC over three AZs: small public subnets for load balancers and NAT only, large private
# subnets for the nodes and the control-plane ENIs. Nothing gets a public IP by default.
# The zones are named, not "whatever is available": a zone AWS adds later must not reshuffle
# subnets. Default: the region's a, b and c zones.
data "aws_region" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
  filter {
    name   = "zone-name"
    values = coalesce(var.availability_zones, [for s in ["a", "b", "c"] : "${data.aws_region.current.name}${s}"])
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
  # /20 private subnets (room for pod IPs from the VPC CNI), /24 public ones at the top of the range.
  private_cidrs = [for i in range(3) : cidrsubnet(var.cidr_block, 4, i)]
  public_cidrs  = [for i in range(3) : cidrsubnet(var.cidr_block, 8, 240 + i)]
  # One NAT per AZ survives an AZ outage; one shared NAT is cheaper for dev.
  nat_count = var.single_nat_gateway ? 1 : 3
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(var.tags, { Name = var.name })
}

# Lock down the default security group so nothing lands in it with open rules by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = merge(var.tags, { Name = "${var.name}-default-deny" })
}

resource "aws_subnet" "public" {
  count                   = 3
  vpc_id                  = aws_vpc.this.id
  cidr_block              = local.public_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false
  tags = merge(var.tags, {
    Name                                        = "${var.name}-public-${local.azs[count.index]}"
    "kubernetes.io/role/elb"                    = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  })
}

resource "aws_subnet" "private" {
  count             = 3
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.private_cidrs[count.index]
  availability_zone = local.azs[count.index]
  tags = merge(var.tags, {
    Name                                        = "${var.name}-private-${local.azs[count.index]}"
    "kubernetes.io/role/internal-elb"           = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  })
}

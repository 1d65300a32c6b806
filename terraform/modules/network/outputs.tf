output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "CIDR of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets, one per AZ (nodes, control-plane ENIs, databases)."
  value       = aws_subnet.private[*].id
}

output "public_subnet_ids" {
  description = "Public subnets, one per AZ (internet-facing load balancers and NAT only)."
  value       = aws_subnet.public[*].id
}

output "azs" {
  description = "The three availability zones used."
  value       = local.azs
}

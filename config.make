# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
# nginx's configure sources this (auto/make) after writing objs/Makefile's
# own rules: the rules that build libcef.a, which config names in
# ngx_module_libs and LINK_DEPS.  The objects are compiled with nginx's
# $(CC) and $(CFLAGS) (its --with-cc-opt), position-independent so that the
# same archive serves a dynamic module and a static nginx.

# cef_lib_dirs and cef_lib_a: set by config
cef_lib_incs=
cef_lib_srcs=
for cef_dir in $cef_lib_dirs; do
    cef_lib_incs="$cef_lib_incs -I $ngx_addon_dir/lib/$cef_dir"
    cef_lib_srcs="$cef_lib_srcs `ls $ngx_addon_dir/lib/$cef_dir/*.c | sort`"
done
cef_lib_srcs="$cef_lib_srcs `ls $ngx_addon_dir/rules/plugins/*.c | sort`"
cef_lib_objs=

for cef_src in $cef_lib_srcs; do
    cef_obj=$NGX_OBJS/addon/libcef/`basename \`dirname $cef_src\``
    cef_obj=$cef_obj/`basename $cef_src .c`.$ngx_objext
    cef_lib_objs="$cef_lib_objs $cef_obj"

    cat << END                                            >> $NGX_MAKEFILE

$cef_obj:	\$(ADDON_DEPS) $cef_src
	@mkdir -p `dirname $cef_obj`
	\$(CC) $ngx_compile_opt $ngx_pic_opt \$(CFLAGS) $cef_lib_incs \\
		-o $cef_obj $cef_src
END
done

cat << END                                                >> $NGX_MAKEFILE

$cef_lib_a:	$cef_lib_objs
	rm -f $cef_lib_a
	ar rcs $cef_lib_a $cef_lib_objs

END
